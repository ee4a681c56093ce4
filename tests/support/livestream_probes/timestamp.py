"""The glass-to-glass clock: each frame carries the wall-clock time it entered ffmpeg,
as a strip of black and white blocks across the top of the picture, which the player
page reads back from a canvas.

Strip layout (left to right, equal-width blocks, the full width of the frame):

    block 0        white   start marker, and the decoder's "one" reference
    block 1        black   start marker, and the decoder's "zero" reference
    blocks 2..43   42 bits of the capture time in epoch milliseconds, most significant first
                   (42 bits last until the year 2109)
    blocks 44..47  4 check bits: the number of one bits among the 42, modulo 16

48 blocks over 1280 pixels are 26 pixels wide and a twelfth of the frame high, black or
white: H.264 at any sane bitrate keeps them apart, and so does scaling down to 426x240 (an
ABR ladder's lowest rung). The check bits reject a frame whose strip a decoder misreads
(a frame in the middle of a scene change, a canvas drawn before the first frame).

Capture time: ffmpeg's wall clock when the frame passes the stamping filter
(``RTCTIME``), which comes right after the source; with a real-time paced source
(``-re`` or the ``realtime`` filter) that is the moment the frame enters ffmpeg. The
frames' own timestamps are set back to a regular ``N / rate`` afterwards, so the encoder
and the muxers see an ordinary constant-rate stream.
"""

from __future__ import annotations

import subprocess

DATA_BITS = 42
CHECK_BITS = 4
MARKER_BLOCKS = 2
BLOCKS = MARKER_BLOCKS + DATA_BITS + CHECK_BITS
# A decoder refuses a strip whose white and black markers are closer than this (0-255):
# no strip there, or a frame that is not the stamped video.
MIN_CONTRAST = 96


def check_value(capture_ms: int) -> int:
    return bin(capture_ms & ((1 << DATA_BITS) - 1)).count("1") % (1 << CHECK_BITS)


def strip_bits(capture_ms: int) -> list[int]:
    """The 48 block values (1 white, 0 black) that encode a capture time."""
    data = [(capture_ms >> (DATA_BITS - 1 - i)) & 1 for i in range(DATA_BITS)]
    check = check_value(capture_ms)
    checks = [(check >> (CHECK_BITS - 1 - i)) & 1 for i in range(CHECK_BITS)]
    return [1, 0] + data + checks


def strip_height(frame_height: int) -> int:
    return max(16, (frame_height // 12) // 2 * 2)


def _geq_expression() -> str:
    """Per-block luma for geq on a BLOCKS x 1 picture whose timestamps are epoch ms.

    Register 0 holds the capture time, register 1 the check value; X is the block.
    """
    milliseconds = "st(0,floor(T*1000+0.5))"
    ones = "+".join(f"mod(floor(ld(0)/{1 << i}),2)" for i in range(DATA_BITS))
    check = f"st(1,mod({ones},{1 << CHECK_BITS}))"
    first_check = MARKER_BLOCKS + DATA_BITS
    block = (
        f"if(lt(X,1),1,if(lt(X,2),0,"
        f"if(lt(X,{first_check}),mod(floor(ld(0)/pow(2,{first_check - 1}-X)),2),"
        f"mod(floor(ld(1)/pow(2,{BLOCKS - 1}-X)),2))))"
    )
    return f"{milliseconds};{check};255*{block}"


def stamp_filter(width: int, height: int, frame_rate: int, *, realtime: bool = False) -> str:
    """A simple filtergraph (one input, one output: usable as ``-vf``) that burns the
    capture-time strip into frames of ``width`` x ``height`` at ``frame_rate``.

    ``realtime`` paces the source at its own rate first: use it when the input is a
    generator read without ``-re``.
    """
    pace = "realtime," if realtime else ""
    band = strip_height(height)
    return (
        f"{pace}settb=1/1000,setpts='floor(RTCTIME/1000)',split[stamp_picture][stamp_tap];"
        f"[stamp_tap]scale={BLOCKS}:1:flags=neighbor,format=gray,"
        f"geq=lum='{_geq_expression()}',"
        f"scale={width}:{band}:flags=neighbor,format=yuv420p[stamp_strip];"
        f"[stamp_picture][stamp_strip]overlay=0:0:format=yuv420,"
        f"settb=AVTB,setpts='N/({frame_rate}*TB)'"
    )


def decode_luma(luma: bytes | bytearray | memoryview, width: int, height: int, frame_height: int | None = None) -> int | None:
    """The capture time (epoch ms) in a grayscale frame (``width`` x ``height`` bytes, one
    per pixel, rows top first), or None when the frame holds no valid strip.

    Only the strip's rows are needed: a caller that cropped them passes the strip's
    ``height`` and the whole frame's ``frame_height``.
    """
    band = min(height, strip_height(frame_height or height))
    top, bottom = band // 4, max(band // 4 + 1, (band * 3) // 4)
    levels = []
    for block in range(BLOCKS):
        left = (block * width) // BLOCKS
        right = ((block + 1) * width) // BLOCKS
        inset = (right - left) // 4
        total = count = 0
        for y in range(top, bottom):
            row = y * width
            for x in range(left + inset, right - inset):
                total += luma[row + x]
                count += 1
        levels.append(total / count)
    return decode_levels(levels)


def decode_levels(levels: list[float]) -> int | None:
    """The capture time from the mean luma of each of the BLOCKS blocks, or None."""
    white, black = levels[0], levels[1]
    if white - black < MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    bits = [1 if level > threshold else 0 for level in levels]
    value = 0
    for bit in bits[MARKER_BLOCKS:MARKER_BLOCKS + DATA_BITS]:
        value = (value << 1) | bit
    check = 0
    for bit in bits[MARKER_BLOCKS + DATA_BITS:]:
        check = (check << 1) | bit
    return value if check == check_value(value) else None


def segment_capture_times(segment: bytes, *, ffmpeg: str = "ffmpeg", timeout: float = 30) -> list[int | None]:
    """The capture time of every frame in a media segment (MPEG-TS or MP4 bytes, as an
    HLS client fetched it), in decoding order; None for a frame without a valid strip.

    With the time a segment became available, this splits glass-to-glass latency into
    the part before the player (encoding, packaging, publishing) and the player's own.
    """
    # the strip spans the whole width at a fixed fraction of the height, whatever the size
    width, height = 480, 270
    band = strip_height(height)
    decoded = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", "-",
         "-vf", f"scale={width}:{height},crop={width}:{band}:0:0,format=gray", "-f", "rawvideo", "-"],
        input=segment, capture_output=True, check=True, timeout=timeout).stdout
    size = width * band
    return [decode_luma(decoded[i:i + size], width, band, height) for i in range(0, len(decoded) - size + 1, size)]


# The same decoder for the player page. Run with selenium's execute_async_script: it waits
# for the next frame the compositor presents (requestVideoFrameCallback), draws that frame
# onto a canvas, and returns {capture: epoch ms from the strip or null, displayed: epoch ms
# the frame is presented at, currentTime}. Without requestVideoFrameCallback it reads the
# current frame and takes Date.now() as the display time.
DECODER_JS = """
const done = arguments[arguments.length - 1];
const selector = arguments.length > 1 ? arguments[0] : "video";
const video = document.querySelector(selector);
const BLOCKS = %(blocks)d, MARKERS = %(markers)d, DATA = %(data)d, CHECK = %(check)d;
const MIN_CONTRAST = %(min_contrast)d;
function checkValue(value) {
  let ones = 0;
  for (let i = 0; i < DATA; i++) ones += Math.floor(value / 2 ** i) %% 2;
  return ones %% (2 ** CHECK);
}
function decode(frameTime) {
  const width = video.videoWidth, height = video.videoHeight;
  if (!width || !height) return { capture: null, displayed: frameTime, currentTime: video.currentTime };
  const band = Math.max(16, Math.floor(Math.floor(height / 12) / 2) * 2);
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = band;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(video, 0, 0, width, band, 0, 0, width, band);
  const pixels = context.getImageData(0, 0, width, band).data;
  const top = Math.floor(band / 4), bottom = Math.max(top + 1, Math.floor(band * 3 / 4));
  const levels = [];
  for (let block = 0; block < BLOCKS; block++) {
    const left = Math.floor(block * width / BLOCKS), right = Math.floor((block + 1) * width / BLOCKS);
    const inset = Math.floor((right - left) / 4);
    let total = 0, count = 0;
    for (let y = top; y < bottom; y++) {
      for (let x = left + inset; x < right - inset; x++) {
        const i = (y * width + x) * 4;
        total += 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
        count++;
      }
    }
    levels.push(total / count);
  }
  let capture = null;
  if (levels[0] - levels[1] >= MIN_CONTRAST) {
    const threshold = (levels[0] + levels[1]) / 2;
    const bits = levels.map((level) => (level > threshold ? 1 : 0));
    let value = 0, check = 0;
    for (let i = MARKERS; i < MARKERS + DATA; i++) value = value * 2 + bits[i];
    for (let i = MARKERS + DATA; i < BLOCKS; i++) check = check * 2 + bits[i];
    if (check === checkValue(value)) capture = value;
  }
  return { capture: capture, displayed: frameTime, currentTime: video.currentTime };
}
if (!video) {
  done({ capture: null, displayed: Date.now(), currentTime: null, error: "no video element" });
} else if (video.requestVideoFrameCallback) {
  const timer = setTimeout(() => done(decode(Date.now())), 2000);
  video.requestVideoFrameCallback((now, metadata) => {
    clearTimeout(timer);
    done(decode(performance.timeOrigin + metadata.expectedDisplayTime));
  });
} else {
  done(decode(Date.now()));
}
""" % {
    "blocks": BLOCKS,
    "markers": MARKER_BLOCKS,
    "data": DATA_BITS,
    "check": CHECK_BITS,
    "min_contrast": MIN_CONTRAST,
}
