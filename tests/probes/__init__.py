"""Instruments that point at a running service and measure or check it: a real browser
(browser), an HLS client and a crowd of simulated viewers (hls), and the glass-to-glass
clock burnt into the video (timestamp). They know nothing about the lab: callers give
them URLs, the CA to trust and the addresses that names resolve to."""
