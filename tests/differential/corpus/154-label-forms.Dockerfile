FROM alpine
LABEL a=b
LABEL "com.example.key"="value with spaces" other=x
LABEL version="1.0" description="This is \
  a long description"
LABEL legacy value with spaces
LABEL k=v k=v2
