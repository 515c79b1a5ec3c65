

   
	
FROM alpine


   
RUN a

