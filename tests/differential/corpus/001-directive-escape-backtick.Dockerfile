# escape=`
FROM mcr.microsoft.com/windows/servercore
WORKDIR C:\app
RUN dir C:\ `
    && echo done
COPY src\ C:\app\
ENV PATH=C:\tools`;C:\bin
