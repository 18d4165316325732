// shop.test.mjs: the web page in real headless Chromium: catalog grid, filters, product page with
// similar items, photo upload with results. Saves screenshots as test artifacts.
// Usage: node shop.test.mjs BASE_URL PHOTO OUT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, photo, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
let failures = 0;
const check = (name, cond, detail = "") => {
  console.log(`${cond ? "ok  " : "FAIL"} ${name}${cond ? "" : ": " + detail}`);
  if (!cond) failures++;
};

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));

  // 1. the catalog grid
  await page.goto(base + "/");
  await page.waitForSelector(".grid .card img");
  const cards = await page.locator(".grid .card").count();
  check("catalog shows a page of products", cards === 24, `${cards} cards`);
  await page.waitForFunction(() => [...document.images].every(i => i.complete && i.naturalWidth > 0));
  check("product photos load", true);
  await page.screenshot({ path: `${outDir}/catalog.png` });

  // 2. a filter narrows the grid
  await page.selectOption('select[data-filter="gender"]', "Women");
  await page.waitForFunction(() => location.hash.includes("gender=Women"));
  await page.waitForSelector(".grid .card");
  const heading = await page.textContent(".head h1");
  check("gender filter applies", heading.includes("Women"), heading);

  // 3. a product page with its similar items
  const first = page.locator(".grid .card").first();
  const id = await first.getAttribute("data-id");
  await first.click();
  await page.waitForSelector("#similar .card");
  const sim = await page.locator("#similar .card").count();
  const simIds = await page.locator("#similar .card").evaluateAll(cs => cs.map(c => c.dataset.id));
  check("product page shows similar items", sim === 12, `${sim} similar`);
  check("the product is not among its similar items", !simIds.includes(id), simIds.join(","));
  check("product title shown", (await page.textContent(".product h1")).length > 0);
  await page.screenshot({ path: `${outDir}/product.png`, fullPage: true });

  // 4. photo upload shows the closest products
  await page.setInputFiles("#photo", photo);
  await page.waitForSelector("#results .card");
  const res = await page.locator("#results .card").count();
  check("photo search shows results", res > 0, `${res} results`);
  await page.screenshot({ path: `${outDir}/photo-search.png`, fullPage: true });

  check("no script errors", errors.length === 0, errors.join("; "));
} finally {
  await browser.close();
}
console.log(`browser: ${failures} failed; screenshots in ${outDir}`);
process.exit(failures ? 1 : 0);
