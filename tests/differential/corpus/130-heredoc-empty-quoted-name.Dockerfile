FROM alpine
RUN <<'' cat
RUN <<"" cat
