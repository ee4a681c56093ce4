// livestream.aws player: lists the streams in streams.json, shows which ones are live
// (their playlist answers), and plays the chosen one with hls.js (or natively in Safari).
"use strict";

const video = document.getElementById("video");
const list = document.getElementById("streams");
const status = document.getElementById("status");
const viewers = document.getElementById("viewers");
let hls = null;
// the stream this page plays (null: none), counted by the origin while the page beacons
let playing = null;
// The player's settings (frontend_player_*), given by the page: the site's
// Content-Security-Policy allows no inline script.
const hlsConfig = JSON.parse(video.dataset.hlsConfig || "{}");
const fragmentSeconds = Number(video.dataset.fragmentSeconds || 0);
const joinFragments = Number(video.dataset.joinFragments || 0);
const targetFragments = Number(video.dataset.targetLatencyFragments || 0);
const liveSyncSettings = ["liveSyncDuration", "liveSyncDurationCount", "liveMaxLatencyDuration",
  "liveMaxLatencyDurationCount"];

// Latencies in seconds, from the fragments' length, not from the playlist's target duration
// (whole seconds: a 0.5-second fragment's is 1). The page's own live sync settings win: hls.js
// refuses a mix of both kinds.
function ownsLiveSync(config) {
  return !(joinFragments > 0 && fragmentSeconds > 0) || liveSyncSettings.some((key) => key in config);
}

// A fragment's length in seconds: the configured one, or the playlist's when its fragments are
// longer (an encoder's, sent on as they are).
function fragmentLength(details) {
  return Math.max(fragmentSeconds, details.averagetargetduration || details.targetduration);
}

function withJoin(config) {
  return ownsLiveSync(config) ? config : { ...config, liveSyncDuration: joinFragments * fragmentSeconds };
}

// hls.js refreshes a live media playlist for the first time about two fragments after
// loading it: the player joins further back than that (withJoin). A stream sent on as its
// encoder made it (mode copy) has the encoder's fragments, maybe longer than the configured
// ones: its playlist is a media playlist, which hls.js shows with its fragments before it
// chooses where to start (MANIFEST_LOADED), so the join counts in those.
function joinAsShown(player) {
  if (ownsLiveSync(hlsConfig)) return;
  player.once(Hls.Events.MANIFEST_LOADED, (event, data) => {
    const details = data.levels.length === 1 ? data.levels[0].details : null;
    if (details && details.live) player.config.liveSyncDuration = joinFragments * fragmentLength(details);
  });
}

// Once the playlist has refreshed and the video plays, the player moves closer to the live
// edge, to its target, by playing slightly faster (hls.js's maxLiveSyncPlaybackRate). Never
// closer than it holds: one and a half target durations (1.5 s for fragments of a second or
// less, 3 s for an encoder's 2-second ones). Closer, it stalls: half-second fragments 0.75 s
// behind stalled in every page load, 1.25 s behind in some (docs/performance.md).
function settleAtTarget(player) {
  if (!(targetFragments > 0)) return;
  const settle = (event, data) => {
    const details = data.details;
    if (!details.live) {
      player.off(Hls.Events.LEVEL_UPDATED, settle);
    } else if (details.advanced && !video.paused && video.currentTime > 0) {
      player.off(Hls.Events.LEVEL_UPDATED, settle);
      player.targetLatency = Math.max(targetFragments * fragmentLength(details), 1.5 * details.targetduration);
    }
  };
  player.on(Hls.Events.LEVEL_UPDATED, settle);
}

// Viewers: while it plays a stream, the page says so every few seconds (a beacon with a random
// session ID of its own, which no cache keeps: the CDN forwards every one), and the origin
// answers with every stream's count of sessions seen lately.
const beaconSeconds = Number(video.dataset.viewersBeaconSeconds || 5);
const session = Array.from(crypto.getRandomValues(new Uint8Array(16)),
  (byte) => byte.toString(16).padStart(2, "0")).join("");

async function beacon() {
  const query = playing ? "?" + new URLSearchParams({ stream: playing, session: session }) : "";
  try {
    const answer = await fetch("/viewers" + query, { cache: "no-store" });
    if (!answer.ok) return;
    const counts = (await answer.json()).viewers || {};
    for (const b of list.querySelectorAll("button")) b.dataset.viewers = counts[b.dataset.stream] ?? 0;
    const count = playing ? counts[playing] ?? 0 : null;
    viewers.textContent = count === null ? "" : count + " watching";
    // for automated checks: the count the page shows
    if (count === null) delete document.body.dataset.viewers;
    else document.body.dataset.viewers = count;
  } catch (e) {
    // the next beacon tries again
  }
}

function play(stream, button) {
  playing = stream.name;
  beacon();
  for (const b of list.querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  status.textContent = "Playing " + stream.name + (stream.audio ? " (audio)" : "");
  // an audio-only stream (mode "audio") plays in the same element, shown as its controls
  video.classList.toggle("audio", Boolean(stream.audio));
  delete document.body.dataset.playerError;
  if (hls) { hls.destroy(); hls = null; }
  if (window.Hls && Hls.isSupported()) {
    hls = new Hls(withJoin(hlsConfig));
    joinAsShown(hls);
    settleAtTarget(hls);
    hls.on(Hls.Events.ERROR, (event, data) => {
      if (!data.fatal) return;
      status.textContent = stream.name + ": " + data.details;
      // for automated checks: the page says why it stopped
      document.body.dataset.playerError = data.details;
    });
    hls.loadSource(stream.playlist);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = stream.playlist;
  } else {
    status.textContent = "This browser cannot play HLS.";
    return;
  }
  video.play().catch(() => {});
}

async function isLive(stream) {
  try {
    const answer = await fetch(stream.playlist, { method: "HEAD", cache: "no-store" });
    return answer.ok;
  } catch (e) {
    return false;
  }
}

async function main() {
  const answer = await fetch("streams.json", { cache: "no-store" });
  const streams = await answer.json();
  const live = await Promise.all(streams.map(isLive));
  list.replaceChildren();
  streams.forEach((stream, i) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = stream.name + (stream.audio ? " (audio)" : "") + (live[i] ? "" : " (offline)");
    button.dataset.stream = stream.name;
    if (!live[i]) item.className = "offline";
    button.addEventListener("click", () => play(stream, button));
    item.appendChild(button);
    list.appendChild(item);
  });
  const wanted = new URLSearchParams(location.search).get("stream");
  const first = streams.findIndex((s, i) => (wanted ? s.name === wanted : live[i]));
  if (first >= 0) play(streams[first], list.querySelectorAll("button")[first]);
  else status.textContent = "No stream is live.";
}

main().catch((e) => { status.textContent = "Cannot load the streams: " + e; });
setInterval(beacon, beaconSeconds * 1000);
