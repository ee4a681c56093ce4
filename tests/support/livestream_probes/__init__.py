"""Instruments that point at a running service and measure or check it: a real browser
(browser), an HLS client and a crowd of simulated viewers (hls), the glass-to-glass
clock burnt into the video (timestamp), TCP reachability (net), and throwaway TLS
material for stand-ins (certs). They know nothing about the lab: callers give
them URLs, the CA to trust and the addresses that names resolve to."""
