 FROM alpine
RUN echo a
ENV A=b C=d
ARG x y
RUN b
