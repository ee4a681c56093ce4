"""The glass-to-glass clock: the strip ffmpeg burns in carries the wall-clock time each
frame entered ffmpeg, and survives H.264 and downscaling."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time

import pytest

from livestream_probes.timestamp import (BLOCKS, decode_levels, decode_luma, segment_capture_times, stamp_filter, strip_bits,
                                         strip_height)

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs ffmpeg (bindep profile test)")

WIDTH, HEIGHT, RATE = 640, 360, 30
BAND = strip_height(HEIGHT)


def ffmpeg(*arguments: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *arguments],
                          check=True, capture_output=True, **kwargs)


def strips(raw: bytes, width: int, height: int, frame_height: int) -> list[int | None]:
    size = width * height
    return [decode_luma(raw[i:i + size], width, height, frame_height) for i in range(0, len(raw) - size + 1, size)]


def test_strip_survives_h264_and_downscaling(tmp_path):
    video, truth = tmp_path / "stamped.ts", tmp_path / "truth.gray"
    graph = (f"[0:v]{stamp_filter(WIDTH, HEIGHT, RATE)},split[encode][truth];"
             f"[truth]crop={WIDTH}:{BAND}:0:0,format=gray[strip]")
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE}:duration=1.5",
           "-filter_complex", graph,
           # a starved encoder: 150 kb/s for 640x360 at 30 fps, worse than any real rendition
           "-map", "[encode]", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "150k", "-pix_fmt", "yuv420p", str(video),
           "-map", "[strip]", "-f", "rawvideo", str(truth))
    sent = strips(truth.read_bytes(), WIDTH, BAND, HEIGHT)
    assert None not in sent and len(sent) == 45
    assert sent == sorted(sent), "capture times go forward"

    for width, height in ((WIDTH, HEIGHT), (426, 240)):
        decoded = ffmpeg("-i", str(video), "-vf", f"scale={width}:{height},format=gray", "-f", "rawvideo", "-",
                         ).stdout
        assert strips(decoded, width, height, height) == sent, f"the strip reads back at {width}x{height}"
    assert segment_capture_times(video.read_bytes()) == sent, "an HLS client reads the times of a segment's frames"


def test_capture_time_is_when_the_frame_entered_ffmpeg():
    """With a real-time source, capture times step by the frame interval, and each lies
    about one frame interval before the frame leaves ffmpeg, never after."""
    interval_ms = 1000 / RATE
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
         "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE}:duration=2",
         "-vf", f"{stamp_filter(WIDTH, HEIGHT, RATE)},crop={WIDTH}:{BAND}:0:0,format=gray",
         "-f", "rawvideo", "-flush_packets", "1", "-"],
        stdout=subprocess.PIPE)
    captured, left = [], []
    with process:
        while len(chunk := process.stdout.read(WIDTH * BAND)) == WIDTH * BAND:
            left.append(time.time() * 1000)
            captured.append(decode_luma(chunk, WIDTH, BAND, HEIGHT))
    assert process.returncode == 0 and len(captured) == 2 * RATE and None not in captured

    spacing = [later - earlier for earlier, later in zip(captured, captured[1:])]
    assert min(spacing) > 0, "every frame has a capture time of its own, in order"
    # the source is paced in real time: the capture times step by one frame interval
    assert abs(statistics.median(spacing) - interval_ms) <= interval_ms / 5, spacing
    in_ffmpeg = [out - c for out, c in zip(left, captured)]
    assert min(in_ffmpeg) >= -2, "no capture time after the frame left ffmpeg (2 ms of rounding)"
    # ffmpeg's filter pipeline holds one frame: the stamp is one interval older than the exit
    assert statistics.median(in_ffmpeg) <= 2 * interval_ms, in_ffmpeg


def test_decoder_refuses_what_is_not_a_valid_strip():
    levels = [255.0 * bit for bit in strip_bits(1_790_000_000_123)]
    assert decode_levels(levels) == 1_790_000_000_123
    flipped = list(levels)
    flipped[20] = 255.0 - flipped[20]
    assert decode_levels(flipped) is None, "a misread bit fails the check"
    assert decode_levels([128.0] * BLOCKS) is None, "no strip: no contrast between the markers"
    plain = ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}", "-frames:v", "1",
                   "-vf", "format=gray", "-f", "rawvideo", "-").stdout
    assert decode_luma(plain, WIDTH, HEIGHT) is None
