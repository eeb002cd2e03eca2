// Debian's Chromium as the browser tests launch it (playwright-core, no Playwright browser download):
// headless, and nothing that phones out, since this machine's network is closed.
const { chromium } = require("playwright-core");

exports.launch = () => chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
