FROM alpine
ENV A=1 \
    B=2 \
    C="x y"
