FROM alpine
CMD [True]
RUN [None]
ENTRYPOINT ["a", 'b']
