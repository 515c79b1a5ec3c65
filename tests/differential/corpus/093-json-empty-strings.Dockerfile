FROM alpine
CMD [""]
RUN ["", ""]
COPY ["", ""]
