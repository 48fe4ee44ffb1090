// Loads an anetrain dashboard in Debian's chromium (headless, driven by puppeteer-core; nothing
// downloads a browser) and checks what a person would look at: no console errors or failed
// requests, the loss chart holding points (gaining them while a live run trains), the sample panel
// showing text, the expected runs overlaid, the log panel holding the events as `dashboard --tui`
// writes them (and, live, following the newest line unless scrolled up, then keeping its place).
// Saves a screenshot. Exit status 1 on any failure.
// Usage: node dashboard_page.mjs URL SCREENSHOT.png [--live] [--runs N] [--samples] [--toggles] [--log]
import puppeteer from 'puppeteer-core';

const [url, shot, ...flags] = process.argv.slice(2);
const live = flags.includes('--live');
const wantSamples = flags.includes('--samples');
const toggles = flags.includes('--toggles');
const wantLog = flags.includes('--log');
const runsAt = flags.indexOf('--runs');
const wantRuns = runsAt >= 0 ? Number(flags[runsAt + 1]) : 1;
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';

const failures = [];
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures.push(what); };

const browser = await puppeteer.launch({
  executablePath: browserPath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000, deviceScaleFactor: 1 });
  const problems = [];
  page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', e => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', r => {
    // The event stream is cut when the page closes; anything else failing is a defect.
    if (!r.url().endsWith('/api/stream')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', r => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });

  await page.goto(url, { waitUntil: 'domcontentloaded' });
  const points = () => page.$eval('#loss-chart', e => Number(e.dataset.points));
  const runs = () => page.$eval('#loss-chart', e => Number(e.dataset.runs));
  await page.waitForFunction(n => Number(document.querySelector('#loss-chart').dataset.runs) >= n, { timeout: 30000 }, wantRuns)
    .catch(() => {});
  const p1 = await points();
  check(p1 > 0, `the loss chart has points (${p1})`);
  check((await runs()) === wantRuns, `${wantRuns} run(s) drawn on the loss chart (${await runs()})`);
  const canvas = await page.$('#loss-chart canvas');
  check(canvas !== null, 'the loss chart is a drawn canvas');
  const legend = await page.$$eval('#loss-chart .u-legend .u-series', s => s.map(e => e.textContent));
  check(legend.filter(t => t.includes('train')).length === wantRuns, `legend: one training-loss series per run (${legend.length} series)`);
  if (live) {
    await page.waitForFunction(p => Number(document.querySelector('#loss-chart').dataset.points) > p, { timeout: 20000 }, p1)
      .catch(() => {});
    const p2 = await points();
    check(p2 > p1, `the loss chart gains points while steps land (${p1} → ${p2})`);
  }
  if (wantSamples) {
    await page.waitForSelector('#samples .sample', { timeout: 30000 }).catch(() => {});
    const text = await page.$$eval('#samples .sample', s => s.map(e => e.textContent).join('\n'));
    check(text.length > 20 && /step \d+/.test(text), `the sample panel shows text (${JSON.stringify(text.slice(0, 80))}…)`);
  }
  if (wantLog) {
    const lines = () => page.$$eval('#log .line', ls => ls.map(l => l.textContent));
    const all = await lines();
    const stepLine = /^\d\d:\d\d:\d\d step \d+  loss \d+\.\d{4}  lr \d\.\d\de[-+]\d\d  grad \d+\.\d{3}  \d+\.\d ms$/;
    check(all.some(l => stepLine.test(l)), `the log has step lines as the TUI writes them (${JSON.stringify(all.find(l => / step /.test(l)))})`);
    check(all.some(l => / started: stories260k on /.test(l)), 'the log has the run\'s start');
    if (wantSamples) check(all.some(l => / step \d+: sample: /.test(l)), 'the log has the samples');
    check(all.some(l => / step \d+: val loss \d/.test(l)), 'the log has the evaluations');
    const atBottom = () => page.$eval('#log', b => b.scrollHeight - b.scrollTop - b.clientHeight < 24);
    const scrollable = await page.$eval('#log', b => b.scrollHeight > b.clientHeight);
    check(scrollable && await atBottom(), 'the log panel scrolls and starts at the newest line');
    if (live) {
      const n0 = all.length;
      await page.waitForFunction(n => document.querySelectorAll('#log .line').length > n, { timeout: 20000 }, n0).catch(() => {});
      await new Promise(r => setTimeout(r, 600));
      check(await atBottom(), `it follows new lines (${n0} → ${(await lines()).length})`);
      await page.$eval('#log', b => { b.scrollTop = 0; });
      const n1 = (await lines()).length;
      await page.waitForFunction(n => document.querySelectorAll('#log .line').length > n, { timeout: 20000 }, n1).catch(() => {});
      await new Promise(r => setTimeout(r, 600));
      const top = await page.$eval('#log', b => b.scrollTop);
      check(top === 0 && (await lines()).length > n1, `scrolled up, it keeps its place while lines arrive (scrollTop ${top})`);
      await page.$eval('#log', b => { b.scrollTop = b.scrollHeight; });
    }
  }
  const stats = await page.$eval('#stats', e => e.textContent);
  check(/train loss/.test(stats) && /tokens\/s/.test(stats), 'the stats row shows loss and throughput');
  const config = await page.$eval('#config', e => e.textContent);
  check(/stories260k/.test(config) && /bf16|fp32/.test(config), 'the configuration panel names the model and precision');
  const badge = await page.$eval('#connection', e => e.textContent);
  check(badge === 'live', `connection badge says live (${badge})`);
  await new Promise(r => setTimeout(r, 600));  // one more redraw
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  if (toggles) {
    // Time on x, log loss: the chart is rebuilt with the same points.
    await page.click('#x-time');
    await page.click('#y-log');
    await new Promise(r => setTimeout(r, 800));
    const xLabel = await page.$eval('#loss-chart .u-legend .u-series', e => e.textContent);
    check(/time/.test(xLabel), `x toggle: loss against time (legend x: ${xLabel})`);
    check((await points()) > 0 && (await runs()) === wantRuns, 'after the toggles every run is still drawn');
    const timeShot = shot.replace(/\.png$/, '-time-log.png');
    await page.screenshot({ path: timeShot, fullPage: false });
    console.log(`screenshot: ${timeShot}`);
    await page.click('#x-step');
    await page.click('#y-lin');
  }
  check(problems.length === 0, `no console errors or failed requests${problems.length ? ': ' + problems.join('; ') : ''}`);
} finally {
  await browser.close();
}
process.exit(failures.length ? 1 : 0);
