// The dashboard in a real browser: Debian's headless Chromium driven by puppeteer-core, the
// page served by toNodeHandler against a Redis fed by real traffic (the WhatsApp client against
// the demo's fake Cloud API, reporting through createRedisMetricsReporter).
//
// RETRYKIT_SCREENSHOT=<file.png> also saves a screenshot of the page (`npm run screenshot`).
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import { createDashboard, toNodeHandler } from '../src/dashboard/index.js';
import type { DeadLetterEntry } from '../src/index.js';
import {
  createRedisDeadLetterQueue,
  createRedisMetricsReporter,
  readFleetMetrics,
} from '../src/redis/index.js';
import { type CloudMessage, createWhatsAppClient } from '../src/whatsapp/index.js';
import { connectRedis, redisUrl, uniquePrefix } from './support/redis.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI === 'true') {
  throw new Error(
    `CI=true but no Chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does)`,
  );
}
if (!hasChromium) {
  console.warn(
    `\n!!! No Chromium at ${CHROMIUM} (set CHROMIUM_PATH): the dashboard browser test is SKIPPED !!!\n`,
  );
}
const describeBrowser = hasChromium && redisUrl ? describe : describe.skip;

const INTERVAL = 1_000;
const WINDOW = 30_000;
const SCRIPT_TEXT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

describeBrowser('dashboard in headless Chromium (real traffic, real Redis)', () => {
  const redis = connectRedis();
  const prefix = uniquePrefix('dash-browser');
  const dlq = createRedisDeadLetterQueue<CloudMessage>(redis, { prefix });
  const redriven: DeadLetterEntry[] = [];
  let browser: Browser;
  let page: Page;
  let server: Server;
  let url = '';
  /** Errors the page logged or threw: a CSP violation or a script error shows here. */
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // Traffic: 60 messages, a fifth of requests 503 (retried), recipients ending in 7
    // undeliverable (131026: dead letters, one holding markup in its text).
    const fake = await startFakeWhatsApp({
      faults: { serverError: 0.2 },
      undeliverable: (to) => to.endsWith('7'),
      seed: 3,
    });
    const reporter = createRedisMetricsReporter(redis, { prefix, intervalMs: INTERVAL });
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: '106540352242922',
      baseUrl: fake.url,
      dlq,
      retry: { maxAttempts: 4, backoff: { initialDelayMs: 5, maxDelayMs: 20 } },
      onEvent: reporter.onEvent,
    });
    // Five waves a second apart, so that the charts have intervals to draw.
    for (let wave = 0; wave < 5; wave++) {
      const started = Date.now();
      await Promise.allSettled(
        Array.from({ length: 12 }, (_, j) => {
          const i = wave * 12 + j;
          return whatsapp.sendMessage({
            messaging_product: 'whatsapp',
            to: `49151000${String(i).padStart(3, '0')}`,
            type: 'text',
            text: { body: i === 7 ? SCRIPT_TEXT : `hello ${i}` },
          });
        }),
      );
      const rest = INTERVAL - (Date.now() - started);
      if (wave < 4 && rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
    }
    await reporter.close();
    await fake.close();

    const handler = createDashboard({
      redis,
      prefix,
      intervalMs: INTERVAL,
      windowMs: WINDOW,
      refreshMs: 500,
      authorize: () => true,
      redrive: (entry) => void redriven.push(entry),
    });
    server = createServer(toNodeHandler(handler));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const { launch } = await import('puppeteer-core');
    browser = await launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.setViewport({ width: 1280, height: 1400 });
    await page.goto(url);
    await page.waitForSelector('body[data-refreshes]', { timeout: 10_000 });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it("shows the numbers readFleetMetrics reads, and the dead letters' codes", async () => {
    const fleet = await readFleetMetrics(redis, { prefix, intervalMs: INTERVAL, windowMs: WINDOW });
    const s = fleet.snapshot;
    expect(s.calls.started).toBe(60);
    expect(s.retries.scheduled).toBeGreaterThan(0);
    const shown = await page.evaluate(() => {
      const data = (id: string) => ({ ...(document.getElementById(id) as HTMLElement).dataset });
      return {
        headline: data('headline'),
        rates: data('rates'),
        latency: data('latency'),
        health: data('health'),
        byCode: Array.from(document.querySelectorAll('#by-code .bar-row')).map((r) => [
          (r as HTMLElement).dataset.key,
          Number((r as HTMLElement).dataset.count),
        ]),
        bars: document.querySelectorAll('#headline svg rect').length,
        firstBars: Array.from(
          document.querySelectorAll('#headline rect[data-series="first"]'),
        ).reduce((sum, r) => sum + Number((r as SVGElement).dataset.value), 0),
        legend: document.getElementById('headline-legend')?.textContent,
        mode: document.body.dataset.mode,
      };
    });
    expect(shown.headline).toEqual({
      firstAttempt: String(s.calls.firstAttemptSucceeded),
      retried: String(s.calls.succeeded - s.calls.firstAttemptSucceeded),
      gaveUp: String(s.calls.gaveUp),
      started: '60',
    });
    expect(Number(shown.headline.retried)).toBeGreaterThan(0);
    expect(shown.bars).toBeGreaterThan(3);
    // The bars, interval by interval, add up to the window's count.
    expect(shown.firstBars).toBe(s.calls.firstAttemptSucceeded);
    expect(shown.legend).toContain(`first attempt ${s.calls.firstAttemptSucceeded}`);
    expect(shown.rates).toEqual({
      retryRate: String(s.ratios.retry),
      errorRate: String(s.ratios.error),
    });
    expect(shown.latency).toEqual({
      p50: String(s.latency.p50Ms),
      p95: String(s.latency.p95Ms),
      p99: String(s.latency.p99Ms),
    });
    expect(shown.health).toEqual({
      healthy: String(fleet.health.healthy),
      breaches: String(fleet.health.breaches.length),
    });
    const size = await dlq.size();
    expect(size).toBe(6);
    expect(shown.byCode).toEqual([['131026', size]]);
    expect(shown.mode).toBe('write');
    if (process.env.RETRYKIT_SCREENSHOT) {
      await page.screenshot({ path: process.env.RETRYKIT_SCREENSHOT, fullPage: true });
    }
  });

  it('shows a payload holding <script> as text, and runs none of it', async () => {
    const entry = (await dlq.list()).entries.find((e) =>
      JSON.stringify(e.payload).includes(JSON.stringify(SCRIPT_TEXT)),
    );
    expect(entry).toBeDefined();
    const id = (entry as DeadLetterEntry).id;
    await page.click(`tr[data-id="${id}"] td.id a`);
    await page.waitForFunction(
      (want) => (document.getElementById('entry') as HTMLElement).dataset.id === want,
      {},
      id,
    );
    const view = await page.evaluate(() => ({
      text: document.getElementById('payload')?.textContent ?? '',
      children: document.getElementById('payload')?.childElementCount,
      scripts: document.querySelectorAll('script').length,
      images: document.querySelectorAll('img').length,
      pwned: typeof (window as { __pwned?: number }).__pwned,
      attempts: document.querySelectorAll('#entry-attempts tbody tr').length,
    }));
    expect(view.text).toContain(JSON.stringify(SCRIPT_TEXT).slice(1, -1));
    expect(view).toMatchObject({ children: 0, scripts: 1, images: 0, pwned: 'undefined' });
    expect(view.attempts).toBe((entry as DeadLetterEntry).attempts.length);
    // The page ran under its own CSP without a violation or a script error.
    expect(pageErrors).toEqual([]);
  });

  it('redrives a selected entry through the page, at the chosen rate', async () => {
    const [first] = (await dlq.list()).entries;
    const id = (first as DeadLetterEntry).id;
    await page.click(`tr[data-id="${id}"] input[type=checkbox]`);
    await page.$eval('#rate', (input) => {
      (input as HTMLInputElement).value = '50';
    });
    await page.click('#redrive');
    await page.waitForFunction(
      () => /^redriven 1,/.test(document.getElementById('dlq-result')?.textContent ?? ''),
      { timeout: 10_000 },
    );
    expect(redriven.map((e) => e.id)).toEqual([id]);
    expect(await dlq.get(id)).toBeUndefined();
    await page.waitForFunction(
      (gone) => document.querySelector(`tr[data-id="${gone}"]`) === null,
      {},
      id,
    );
  });
});
