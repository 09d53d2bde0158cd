// report.html of a real failing run in a real browser: Debian's Chromium, headless, driven by
// playwright-core. The failing cell of the truth table is on screen in the screenshot (its
// pixels are the failure colour, a passing cell's are not), the page asks the network for
// nothing, and the filters hide and show scenarios. Skipped, saying why, without Chromium.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { FIXTURE, ROOT, runCli, type CliRun } from './support/reports.js';

const isRoot = process.getuid?.() === 0;
const CHROMIUM = process.env.NETCONFORM_CHROMIUM_PATH ?? '/usr/bin/chromium';
const NO_CHROMIUM = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; scripts/setup.sh does it unless NETCONFORM_CHROMIUM=none)`;
// what this machine's closed network needs: no background connections, no sandbox as root
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const VIEWPORT = { width: 1280, height: 900 };

/** Colours of the light theme (html.ts): a failing cell's background, a passing cell's. */
const FAIL_BG = [0xff, 0xeb, 0xe9];
const PASS_BG = [0xda, 0xfb, 0xe1];

/** Share of the pixels inside a box (inset, to leave the outline out) within 6 of a colour. */
function share(png: PNG, box: { x: number; y: number; width: number; height: number }, rgb: number[]): number {
  let hit = 0;
  let all = 0;
  for (let y = Math.ceil(box.y + 4); y < box.y + box.height - 4; y++) {
    for (let x = Math.ceil(box.x + 4); x < box.x + box.width - 4; x++) {
      const i = (y * png.width + x) * 4;
      all++;
      if (rgb.every((c, k) => Math.abs(png.data[i + k] - c) <= 6)) hit++;
    }
  }
  return all ? hit / all : 0;
}

describe.skipIf(!isRoot)('report.html in a headless Chromium', () => {
  let run: CliRun;
  let browser: Browser | undefined;
  let page: Page;
  const requests: string[] = [];

  beforeAll(async () => {
    run = await runCli(['run', FIXTURE, 'scenarios/egress/masquerade.yaml', '--junit', '{dir}/junit.xml']);
    expect(run.exitCode, run.stderr).toBe(1);
    if (NO_CHROMIUM) return;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'light' });
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${join(run.dir, 'report.html')}`);
  });

  afterAll(async () => {
    await browser?.close();
    if (run) rmSync(run.dir, { recursive: true, force: true });
  });

  it('the screenshot shows the failing cell in the failure colour', async (ctx) => {
    if (NO_CHROMIUM) return ctx.skip(NO_CHROMIUM);
    const failing = page.locator('td.cell.failed[data-from="wan"][data-to="web"]');
    await expect(failing.innerText()).resolves.toMatch(/✗ tcp\/81 (timeout|unreachable) expected connected/);
    await failing.scrollIntoViewIfNeeded();
    const shot = join(run.dir, 'failing-cell.png');
    await page.screenshot({ path: shot });
    // kept where a person can look at it after the run (reports/ is git-ignored)
    mkdirSync(join(ROOT, 'reports'), { recursive: true });
    copyFileSync(shot, join(ROOT, 'reports', 'report-failing-cell.png'));
    const png = PNG.sync.read(readFileSync(shot));
    expect([png.width, png.height]).toEqual([VIEWPORT.width, VIEWPORT.height]);
    const box = (await failing.boundingBox())!;
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.y + box.height).toBeLessThanOrEqual(VIEWPORT.height);
    expect(share(png, box, FAIL_BG)).toBeGreaterThan(0.4);
    // the same measure on the passing cell beside it: green, not red (the check can tell them apart)
    const passing = page.locator('td.cell.passed[data-from="wan"][data-to="host"]');
    const pbox = (await passing.boundingBox())!;
    expect(share(png, pbox, FAIL_BG)).toBeLessThan(0.05);
    expect(share(png, pbox, PASS_BG)).toBeGreaterThan(0.4);
  });

  it('asks the network for nothing', (ctx) => {
    if (NO_CHROMIUM) return ctx.skip(NO_CHROMIUM);
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    expect(requests.length).toBe(1); // the page itself
  });

  it('the filters show what is not passing, or what matches the text', async (ctx) => {
    if (NO_CHROMIUM) return ctx.skip(NO_CHROMIUM);
    const failing = page.locator('section.scenario#report-wrong-expectations');
    const passing = page.locator('section.scenario#egress-masquerade');
    await expect(passing.isVisible()).resolves.toBe(true);
    await page.locator('input[name=show][value=attention]').check();
    await expect(passing.isVisible()).resolves.toBe(false);
    await expect(failing.isVisible()).resolves.toBe(true);
    await page.locator('input[name=show][value=all]').check();
    await page.locator('#q').fill('egress');
    await expect(passing.isVisible()).resolves.toBe(true);
    await expect(failing.isVisible()).resolves.toBe(false);
  });
});
