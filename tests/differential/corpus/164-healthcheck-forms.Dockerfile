FROM alpine
HEALTHCHECK CMD curl -f http://localhost/ || exit 1
HEALTHCHECK NONE
HEALTHCHECK --interval=30s --timeout=5s --start-period=1s --retries=3 CMD ["wget", "-q", "x"]
HEALTHCHECK
HEALTHCHECK CMD
HEALTHCHECK   CMD    spaced   out  
HEALTHCHECK CMD	tabbed
HEALTHCHECK NONE extra args
HEALTHCHECK cmd lower
