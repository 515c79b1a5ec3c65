FROM   
RUN 	 
CMD  
COPY   
ENV  
ARG 	
