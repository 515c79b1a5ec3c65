FROM alpine
ONBUILD --a=1 COPY --b=2 --c src dst
