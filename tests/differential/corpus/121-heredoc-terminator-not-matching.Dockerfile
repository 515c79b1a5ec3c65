FROM alpine
RUN <<EOF
 EOF
EOF 
	EOF
eof
EOF
