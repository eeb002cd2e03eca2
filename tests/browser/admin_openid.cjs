// Signs in to kinto-admin through Kinto's OpenID Connect flow in Debian's Chromium (playwright-core): the admin
// sends the browser to /v1/openid/<provider>/login, the provider's login and consent forms are filled, and the
// admin comes back signed in with the token. Run by tests/test_identity_admin.py.
//   node admin_openid.cjs <origin> <provider label> <login> <expected user id> <screenshot.png>
const { launch } = require("./chromium.cjs");

const [origin, label, login, userId, shot] = process.argv.slice(2);
const TIMEOUT = 20000;

async function main() {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(TIMEOUT);
  try {
    await page.goto(`${origin}/v1/admin/`);
    await page.getByLabel(`OpenID Connect (${label})`).check();
    await page.getByRole("button", { name: /Sign in/ }).click();
    // The provider's login form (oidc-provider's development interactions), then its consent form.
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill("any");
    await page.locator("button[type=submit]").click();
    await page.locator("button[type=submit]").click();
    await page.getByText(userId).first().waitFor();
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`signed in as ${userId}; screenshot: ${shot}`);
  } catch (e) {
    await page.screenshot({ path: shot.replace(/\.png$/, "-failed.png"), fullPage: true });
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`admin OpenID sign-in failed: ${e.message}`);
  process.exit(1);
});
