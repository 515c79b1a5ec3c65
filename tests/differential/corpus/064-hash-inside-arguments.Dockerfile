FROM alpine
RUN echo hello # world
ENV A=#b C="#d"
LABEL x=y#z
COPY a#b c#d
