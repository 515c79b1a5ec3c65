FROM alpine
COPY <<-EOF /x
		body keeps tabs
	EOF
