FROM --platform=x alpine
ENV --a=b C=d
LABEL --x l=v
EXPOSE --p 80
MAINTAINER --m me
USER --u root
WORKDIR --w /tmp
STOPSIGNAL --s SIGTERM
SHELL --s ["/bin/sh", "-c"]
ARG --a X=1
VOLUME --v /data
CMD --c ["a"]
ENTRYPOINT --e ["b"]
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD curl -f http://localhost/
ONBUILD --o RUN echo
FOO --f bar
