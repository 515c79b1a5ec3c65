# escape=`
FROM alpine
COPY --from=a\b --chown=x`y c d
