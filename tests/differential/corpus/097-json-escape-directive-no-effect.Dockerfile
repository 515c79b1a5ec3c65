# escape=`
FROM alpine
CMD ["a\\b", "c`d"]
RUN ["x\"y"]
