FROM alpine
COPY ["src dir", "/dst dir/"]
ADD ["http://example.com/a b", "/x"]
VOLUME ["/var/log", "/data"]
VOLUME /a /b   /c
COPY a  b	c
