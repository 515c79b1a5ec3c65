FROM alpine
RUN --mount=type=cache,target=/c <<EOF
ls /c
EOF
COPY --from=x --chmod=600 <<-K /k
	k
	K
