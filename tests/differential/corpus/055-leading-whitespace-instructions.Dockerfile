   FROM alpine
		RUN echo a
  	  # comment
    CMD ["x"]
