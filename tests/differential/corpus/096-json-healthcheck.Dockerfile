FROM alpine
HEALTHCHECK CMD ["curl", "-f", "http://localhost"]
HEALTHCHECK --interval=1s CMD ["a"]
HEALTHCHECK CMD ['x']
