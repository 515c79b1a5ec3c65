FROM alpine
RUN cat <<<EOF
RUN cat <<EOF<<EOG
RUN echo "<<EOF"
RUN echo '<<EOF'
RUN cat <<
RUN cat <<-
RUN cat a<<EOF
