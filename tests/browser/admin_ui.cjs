// Drives the kinto-admin UI in Debian's Chromium (playwright-core, no Playwright browser download):
// signs in with a Kinto account, creates a bucket, a collection and a record through the forms, and leaves a
// screenshot. Run by tests/test_admin_ui.py, which then reads the objects back through the HTTP API.
//   node admin_ui.cjs <origin> <user> <password> <bucket> <collection> <title> <screenshot.png>
const { launch } = require("./chromium.cjs");

const [origin, user, password, bucket, collection, title, shot] = process.argv.slice(2);
const admin = `${origin}/v1/admin/`;
const TIMEOUT = 20000;

async function main() {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(TIMEOUT);
  const step = async (name, fn) => {
    try {
      await fn();
      console.log(`ok: ${name}`);
    } catch (e) {
      await page.screenshot({ path: shot.replace(/\.png$/, "-failed.png"), fullPage: true });
      throw new Error(`${name}: ${e.message}`);
    }
  };
  try {
    await step("sign in with a Kinto account", async () => {
      await page.goto(admin);
      await page.getByLabel("Kinto Account Auth").check();
      await page.locator("#root_credentials_username").fill(user);
      await page.locator("#root_credentials_password").fill(password);
      await page.getByRole("button", { name: /Sign in/ }).click();
      await page.getByText(`account:${user}`).first().waitFor();
    });
    await step("create a bucket", async () => {
      await page.goto(`${admin}#/buckets/create`);
      await page.locator(".content #root_id:not([disabled])").fill(bucket);
      await page.locator(".content form button[type=submit]").click();
      await page.waitForURL(new RegExp(`#/buckets/${bucket}/`), { waitUntil: "commit" });
      // kinto-admin loads the user's permissions when the session starts and does not refresh them after a
      // create (the same with the reference Kinto): reload so the new bucket's forms are enabled.
      await page.reload();
      await page.getByText(`account:${user}`).first().waitFor();
    });
    await step("create a collection", async () => {
      await page.goto(`${admin}#/buckets/${bucket}/collections/create`);
      await page.locator(".content #root_id:not([disabled])").fill(collection);
      await page.locator(".content form button[type=submit]").click();
      await page.waitForURL(new RegExp(`#/buckets/${bucket}/collections/${collection}/`), {
        waitUntil: "commit",
      });
    });
    await step("create a record", async () => {
      await page.goto(`${admin}#/buckets/${bucket}/collections/${collection}/records/create`);
      await page.locator(".content #root_title:not([disabled])").fill(title);
      await page.locator(".content #root_content").fill("typed in the admin UI");
      await page.locator(".content form button[type=submit]").click();
      // The records list, with the new record in it.
      await page.getByRole("cell", { name: title }).waitFor();
    });
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`admin UI test failed: ${e.message}`);
  process.exit(1);
});
