FROM alpine
LABEL desc="héllo wörld 日本語 😀"
RUN echo привет && echo مرحبا
ENV ÉTÉ=été
COPY über /über
ÜNKNOWN x
