package org.cdss.hapi;

import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Instance-validator settings for {@code $validate}: a profile the server does not hold (for example
 * the mCODE profiles CDSS declares in {@code meta.profile}, whose IG is not loaded here) is reported as
 * a warning instead of an error; the resource is still validated against the R4 core definitions.
 */
@Configuration
public class ValidatorSettings {

	@Bean
	public static BeanPostProcessor cdssInstanceValidatorSettings() {
		return new BeanPostProcessor() {
			@Override
			public Object postProcessAfterInitialization(Object bean, String beanName) {
				if (bean instanceof FhirInstanceValidator validator) {
					validator.setErrorForUnknownProfiles(false);
				}
				return bean;
			}
		};
	}
}
