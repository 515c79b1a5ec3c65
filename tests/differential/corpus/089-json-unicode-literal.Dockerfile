FROM alpine
CMD ["été", "日本語", "😀"]
