package org.cdss.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.annotation.Import;

/**
 * Entry point of the CDSS test HAPI FHIR server: HAPI's JPA server for FHIR R4 on an in-memory H2
 * database, served at {@code /fhir} on 127.0.0.1 (port from {@code FHIR_PORT}, default 28090).
 *
 * <p>HAPI's own configuration classes supply the DAOs, resource providers, search, terminology
 * and validation support; {@link JpaBeans} adds the few beans an application must provide
 * (storage settings, entity manager, transactions) and {@link FhirServletConfig} mounts the
 * RESTful server.
 */
@SpringBootApplication(
		excludeName = {
			"org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration",
			"org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration",
			"org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration",
			"org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration",
			"org.springframework.boot.autoconfigure.flyway.FlywayAutoConfiguration"
		})
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	ThreadPoolFactoryConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionChannelConfig.class
})
public class CdssFhirServer {

	public static void main(String[] args) {
		SpringApplication.run(CdssFhirServer.class, args);
	}
}
