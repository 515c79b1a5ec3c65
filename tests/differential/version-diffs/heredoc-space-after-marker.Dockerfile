FROM alpine
RUN << EOF
x
EOF
COPY <<  END /f
y
END
