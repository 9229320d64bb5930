//! Where requests go: the region they are signed for and the endpoints they are sent to, by
//! the AWS SDKs' precedence. One copy, for runs and for every subcommand.

use anyhow::{bail, Result};

use super::choice::OUTER_PROFILE_VAR;
use super::env::Env;
use super::validate::validate_region;
use crate::profile::{Profile, ProfileFiles};

/// Where a profile's IAM calls go: its region (IAM is global, signed for us-east-1, but the
/// aws-cn and aws-us-gov partitions have their own), and the IAM and STS endpoints when
/// configured (STS answers "who am I").
#[derive(Clone, Debug, Default)]
pub(crate) struct Place {
    pub(crate) region: Option<String>,
    pub(crate) iam_endpoint: Option<String>,
    pub(crate) sts_endpoint: Option<String>,
}

impl Place {
    /// The profile's, by the precedence below (no `--region`: IAM commands take none).
    pub(crate) fn of(files: &ProfileFiles, profile: Profile<'_>, env: &Env) -> Result<Place> {
        Ok(Place {
            region: region(None, profile, env)?,
            iam_endpoint: service_endpoint(files, profile, env, "iam")?,
            sts_endpoint: service_endpoint(files, profile, env, "sts")?,
        })
    }
}

/// The region requests are signed for: `--region` > AWS_REGION > AWS_DEFAULT_REGION > the
/// profile's `region`, checked to be a region name. Inside a command that an outer mfa-exec
/// started for another profile, AWS_REGION is that profile's region: it must not beat this
/// profile's own `region` (it still beats having none).
pub(crate) fn region(
    flag: Option<&str>,
    profile: Profile<'_>,
    env: &Env,
) -> Result<Option<String>> {
    let env_region = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"));
    let inherited = env
        .get(OUTER_PROFILE_VAR)
        .is_some_and(|outer| outer != profile.name);
    let profile_region = profile.get("region");
    let region = flag.or(if inherited {
        profile_region.or(env_region)
    } else {
        env_region.or(profile_region)
    });
    if let Some(r) = region {
        validate_region(r)?;
    }
    Ok(region.map(String::from))
}

/// A service's configured endpoint (`sts`, `iam`), as every AWS SDK picks it:
/// AWS_ENDPOINT_URL_<SERVICE> > AWS_ENDPOINT_URL > `[services]` `<service>.endpoint_url` > the
/// profile's `endpoint_url`; all off with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (or the
/// profile's `ignore_configured_endpoint_urls`).
pub(crate) fn service_endpoint(
    files: &ProfileFiles,
    profile: Profile<'_>,
    env: &Env,
    service: &str,
) -> Result<Option<String>> {
    let ignore = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .or_else(|| profile.get("ignore_configured_endpoint_urls"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore {
        return Ok(None);
    }
    let service_var = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
    let url = env
        .get(&service_var)
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .or_else(|| {
            profile
                .get("services")
                .and_then(|s| files.service_property(s, service, "endpoint_url"))
        })
        .or_else(|| profile.get("endpoint_url"));
    match url {
        // A URL the HTTP client cannot use fails only at send time, in a message that
        // prints the whole request: refuse it here, before any code is asked for.
        Some(u)
            if (u.starts_with("http://") || u.starts_with("https://"))
                && u.parse::<http::Uri>().map_or(true, |uri| {
                    uri.host().is_none() || (uri.port().is_some() && uri.port_u16().is_none())
                }) =>
        {
            bail!("endpoint URL '{u}' is not a valid URL (check the host, port and brackets around an IPv6 address); fix AWS_ENDPOINT_URL(_{}) or the profile's endpoint_url", service.to_ascii_uppercase())
        }
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u.to_string())),
        Some(u) => bail!("endpoint URL '{u}' must start with http:// or https://; fix AWS_ENDPOINT_URL(_{}) or the profile's endpoint_url", service.to_ascii_uppercase()),
        None => Ok(None),
    }
}

/// Services whose configured endpoints `--proxy` resolves before the command starts, by the
/// name requests are signed for (which is the SDKs' service id, lower case, for all of them);
/// `AWS_ENDPOINT_URL_<SERVICE>` variables of any other service are resolved too.
const PROXIED_SERVICES: [&str; 24] = [
    "s3",
    "sts",
    "iam",
    "ec2",
    "dynamodb",
    "lambda",
    "sqs",
    "sns",
    "kms",
    "ssm",
    "logs",
    "cloudformation",
    "secretsmanager",
    "ecr",
    "ecs",
    "eks",
    "rds",
    "route53",
    "cloudwatch",
    "monitoring",
    "events",
    "states",
    "kinesis",
    "acm",
];

/// Where `--proxy` sends each request: the endpoints the profile configures, resolved once
/// before the command starts (the command itself only knows the proxy), else the standard
/// endpoint of the request's service and region.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProxyTargets {
    /// By service (signing name): AWS_ENDPOINT_URL_<SERVICE> or `[services]`.
    configured: std::collections::HashMap<String, String>,
    /// AWS_ENDPOINT_URL or the profile's `endpoint_url`.
    all: Option<String>,
}

impl ProxyTargets {
    pub(crate) fn of(
        files: &ProfileFiles,
        profile: Profile<'_>,
        env: &Env,
    ) -> Result<ProxyTargets> {
        let all = service_endpoint(files, profile, env, "")?;
        let from_env = env
            .names_starting_with("AWS_ENDPOINT_URL_")
            .map(|n| n["AWS_ENDPOINT_URL_".len()..].to_ascii_lowercase());
        let mut configured = std::collections::HashMap::new();
        for service in PROXIED_SERVICES
            .into_iter()
            .map(String::from)
            .chain(from_env)
        {
            if let Some(url) = service_endpoint(files, profile, env, &service)? {
                if Some(&url) != all.as_ref() {
                    configured.insert(service, url);
                }
            }
        }
        Ok(ProxyTargets { configured, all })
    }

    /// The endpoint (scheme, host, optional port and base path) a request signed for
    /// `service` in `region` goes to.
    pub(crate) fn url(&self, service: &str, region: &str) -> String {
        self.configured
            .get(service)
            .or(self.all.as_ref())
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| standard_endpoint(service, region))
    }
}

/// A service's public endpoint in a region, by its partition's DNS suffix (aws-cn regions
/// start with `cn-`); IAM and the other global services have one endpoint a partition, and a
/// few services' hosts are not named as they sign (SES signs as `ses` on `email.`).
pub(crate) fn standard_endpoint(service: &str, region: &str) -> String {
    let china = region.starts_with("cn-");
    let suffix = if china {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    match service {
        "iam" if china => format!("https://iam.{region}.{suffix}"),
        "iam" if region.starts_with("us-gov-") => "https://iam.us-gov.amazonaws.com".to_string(),
        "iam" | "route53" | "cloudfront" if !china => format!("https://{service}.{suffix}"),
        "ses" => format!("https://email.{region}.{suffix}"),
        "mobiletargeting" => format!("https://pinpoint.{region}.{suffix}"),
        _ => format!("https://{service}.{region}.{suffix}"),
    }
}

/// The hosts of a partition's console sign-in: the federation endpoint and the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConsoleHosts {
    pub(crate) signin: &'static str,
    pub(crate) console: &'static str,
}

/// The console hosts of the partition a role ARN names (`arn:aws-cn:…`), from the IAM User
/// Guide's "Enable custom identity broker access to the AWS console".
pub(crate) fn console_hosts(role_arn: &str) -> Result<ConsoleHosts> {
    match role_arn.split(':').nth(1) {
        Some("aws") => Ok(ConsoleHosts {
            signin: "https://signin.aws.amazon.com",
            console: "https://console.aws.amazon.com",
        }),
        Some("aws-cn") => Ok(ConsoleHosts {
            signin: "https://signin.amazonaws.cn",
            console: "https://console.amazonaws.cn",
        }),
        Some("aws-us-gov") => Ok(ConsoleHosts {
            signin: "https://signin.amazonaws-us-gov.com",
            console: "https://console.amazonaws-us-gov.com",
        }),
        other => bail!(
            "the console sign-in knows the partitions aws, aws-cn and aws-us-gov, not '{}' of role {role_arn}; set AWS_ENDPOINT_URL_SIGNIN to its sign-in endpoint",
            other.unwrap_or_default()
        ),
    }
}

/// The console sign-in endpoint: a configured `signin` endpoint by the SDKs' precedence
/// (AWS_ENDPOINT_URL_SIGNIN > AWS_ENDPOINT_URL > `[services]` > `endpoint_url`), else the
/// partition's host. Returns it and whether it was configured.
pub(crate) fn signin_endpoint(
    files: &ProfileFiles,
    profile: Profile<'_>,
    env: &Env,
    hosts: ConsoleHosts,
) -> Result<(String, bool)> {
    Ok(match service_endpoint(files, profile, env, "signin")? {
        Some(url) => (url.trim_end_matches('/').to_string(), true),
        None => (hosts.signin.to_string(), false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_has_its_console_hosts() {
        let hosts = |arn: &str| console_hosts(arn).map(|h| (h.signin, h.console));
        assert_eq!(
            hosts("arn:aws:iam::123456789012:role/r").unwrap(),
            (
                "https://signin.aws.amazon.com",
                "https://console.aws.amazon.com"
            )
        );
        assert_eq!(
            hosts("arn:aws-cn:iam::123456789012:role/r").unwrap(),
            (
                "https://signin.amazonaws.cn",
                "https://console.amazonaws.cn"
            )
        );
        assert_eq!(
            hosts("arn:aws-us-gov:iam::123456789012:role/r").unwrap(),
            (
                "https://signin.amazonaws-us-gov.com",
                "https://console.amazonaws-us-gov.com"
            )
        );
        assert!(hosts("arn:aws-iso:iam::123456789012:role/r").is_err());
    }

    #[test]
    fn proxied_requests_go_to_their_partitions_standard_endpoints() {
        let cases = [
            ("s3", "eu-west-1", "https://s3.eu-west-1.amazonaws.com"),
            ("sts", "us-east-1", "https://sts.us-east-1.amazonaws.com"),
            ("iam", "us-east-1", "https://iam.amazonaws.com"),
            (
                "iam",
                "cn-north-1",
                "https://iam.cn-north-1.amazonaws.com.cn",
            ),
            ("iam", "us-gov-west-1", "https://iam.us-gov.amazonaws.com"),
            (
                "dynamodb",
                "cn-northwest-1",
                "https://dynamodb.cn-northwest-1.amazonaws.com.cn",
            ),
            (
                "ses",
                "eu-central-1",
                "https://email.eu-central-1.amazonaws.com",
            ),
        ];
        for (service, region, url) in cases {
            assert_eq!(
                standard_endpoint(service, region),
                url,
                "{service} {region}"
            );
        }
    }
}
