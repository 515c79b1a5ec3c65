FROM alpine
ENV D e f
LABEL k v=x y
