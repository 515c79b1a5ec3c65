FROM alpine
CMD echo "hello world"
ENTRYPOINT exec   /bin/app   --flag
CMD   trailing spaces   
RUN echo 'single' "double" `backtick` $VAR ${VAR}
