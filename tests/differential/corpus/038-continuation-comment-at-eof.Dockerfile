FROM alpine
RUN echo a \
# the end
