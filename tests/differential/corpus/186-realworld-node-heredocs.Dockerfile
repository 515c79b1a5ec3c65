# syntax=docker/dockerfile:1
FROM node:20-alpine AS app
WORKDIR /usr/src/app
COPY package*.json ./
RUN npm ci --omit=dev
COPY <<EOF /usr/src/app/.npmrc
registry=https://registry.npmjs.org/
fund=false
EOF
RUN <<-SETUP
	set -eux
	addgroup -S app && adduser -S app -G app
	chown -R app:app /usr/src/app
	SETUP
COPY <<"EOF" /usr/local/bin/start.sh
#!/bin/sh
exec node server.js "$@"
EOF
USER app
CMD ["sh", "/usr/local/bin/start.sh"]
