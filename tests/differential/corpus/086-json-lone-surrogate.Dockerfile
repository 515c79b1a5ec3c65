FROM alpine
CMD ["\ud800"]
RUN ["x\udc00y", "\ude00\ud83d"]
