FROM alpine
ONBUILD RUN echo hi
ONBUILD   COPY --from=build /a /b
ONBUILD --outer ADD x y
ONBUILD
ONBUILD    
ONBUILD FOO bar
ONBUILD ONBUILD RUN nested
ONBUILD ENV A=1 B="two"
ONBUILD LABEL k v
ONBUILD HEALTHCHECK --interval=1s CMD true
onbuild expose 80
