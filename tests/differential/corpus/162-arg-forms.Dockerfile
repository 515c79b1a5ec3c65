ARG BASE=alpine
ARG VERSION
ARG A=1 B C="x y" D=
ARG "quoted"=v
ARG E=a\ b F='c d'
FROM ${BASE}:${VERSION:-latest}
ARG VERSION
