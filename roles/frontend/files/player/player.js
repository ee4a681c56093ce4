// livestream.aws player: lists the streams in streams.json, shows which ones are live
// (their playlist answers), and plays the chosen one with hls.js (or natively in Safari).
"use strict";

const video = document.getElementById("video");
const list = document.getElementById("streams");
const status = document.getElementById("status");
let hls = null;
// The player's settings (frontend_player_*), given by the page: the site's
// Content-Security-Policy allows no inline script.
const hlsConfig = JSON.parse(video.dataset.hlsConfig || "{}");
const targetFragments = Number(video.dataset.targetLatencyFragments || 0);

// hls.js refreshes a live media playlist for the first time two fragments after loading
// it: the player joins further back than that (hlsConfig), and once the playlist has
// refreshed and the video plays, moves closer to the live edge, to its target, by playing
// slightly faster (hls.js's maxLiveSyncPlaybackRate).
function settleAtTarget(player) {
  if (!(targetFragments > 0)) return;
  const settle = (event, data) => {
    if (!data.details.live) {
      player.off(Hls.Events.LEVEL_UPDATED, settle);
    } else if (data.details.advanced && !video.paused && video.currentTime > 0) {
      player.off(Hls.Events.LEVEL_UPDATED, settle);
      player.targetLatency = targetFragments * data.details.targetduration;
    }
  };
  player.on(Hls.Events.LEVEL_UPDATED, settle);
}

function play(stream, button) {
  for (const b of list.querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  status.textContent = "Playing " + stream.name + (stream.audio ? " (audio)" : "");
  // an audio-only stream (mode "audio") plays in the same element, shown as its controls
  video.classList.toggle("audio", Boolean(stream.audio));
  delete document.body.dataset.playerError;
  if (hls) { hls.destroy(); hls = null; }
  if (window.Hls && Hls.isSupported()) {
    hls = new Hls(hlsConfig);
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
