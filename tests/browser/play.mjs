// Opens the test player in Debian's headless Chromium and reports, as one JSON line, how far
// playback got: node play.mjs PAGE_URL SECONDS
import { chromium } from 'playwright-core';

const [page_url, seconds = '10'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
         '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage();
  await page.goto(page_url);
  const start = Date.now();
  let state = {};
  let first = null;
  while (Date.now() - start < Number(seconds) * 1000) {
    await page.waitForTimeout(500);
    state = await page.evaluate(() => ({
      currentTime: document.getElementById('v').currentTime,
      // Chromium counts the audio it decoded: sound played, not just pictures.
      audioBytes: document.getElementById('v').webkitAudioDecodedByteCount,
      ...window.playerState,
    }));
    if (first === null && state.currentTime > 0) first = state.currentTime;
    if (state.fatal) break;
  }
  // How far playback advanced since it started (live streams start near the live edge).
  state.advanced = first === null ? 0 : state.currentTime - first;
  console.log(JSON.stringify(state));
} finally {
  await browser.close();
}
