# escape = `  # trailing
FROM alpine
RUN a
