FROM alpine
RUN <<-EOF
	echo a
		echo b
  echo c
		EOF
RUN <<EOF
	EOF
EOF
