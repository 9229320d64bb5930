//! Where requests go: the region they are signed for and the endpoints they are sent to, by
//! the AWS SDKs' precedence. One copy, for runs and for every subcommand.

use std::borrow::Cow;
use std::cell::RefCell;

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
    let service_var = match service {
        "sts" => Cow::Borrowed("AWS_ENDPOINT_URL_STS"),
        "iam" => Cow::Borrowed("AWS_ENDPOINT_URL_IAM"),
        _ => Cow::Owned(format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase())),
    };
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
        Some(u) if (u.starts_with("http://") || u.starts_with("https://")) && !usable_url(u) => {
            bail!("endpoint URL '{u}' is not a valid URL (check the host, port and brackets around an IPv6 address); fix AWS_ENDPOINT_URL(_{}) or the profile's endpoint_url", service.to_ascii_uppercase())
        }
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u.to_string())),
        Some(u) => bail!("endpoint URL '{u}' must start with http:// or https://; fix AWS_ENDPOINT_URL(_{}) or the profile's endpoint_url", service.to_ascii_uppercase()),
        None => Ok(None),
    }
}

/// Whether the HTTP client can use an http(s) URL (a host, a port that fits 16 bits); the
/// answer for the last URL asked is kept, since every profile of a `list` asks for the same
/// one when it comes from the environment.
fn usable_url(url: &str) -> bool {
    thread_local! {
        static LAST: RefCell<Option<(String, bool)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((asked, usable)) if asked == url => *usable,
        _ => {
            let usable = url.parse::<http::Uri>().is_ok_and(|uri| {
                uri.host().is_some() && (uri.port().is_none() || uri.port_u16().is_some())
            });
            *last = Some((url.to_string(), usable));
            usable
        }
    })
}

/// The services whose configured endpoints `--proxy` resolves before the command starts: the
/// route a request takes (its signing name, or for a second API signed under the same name,
/// that API's own) and the SDKs' service id as `AWS_ENDPOINT_URL_<ID>` spells it (the id upper
/// case, spaces as `_`; the `[services]` key is the same in lower case). Signing names and ids
/// often differ: `logs` is CloudWatch Logs, `monitoring` CloudWatch, `states` SFN, `events`
/// EventBridge (AWS SDKs' "Identifiers for service-specific endpoints" table).
/// `AWS_ENDPOINT_URL_<SERVICE>` variables of any other service are resolved too, by the lower
/// case of their suffix.
const SERVICE_IDS: [(&str, &str); 39] = [
    ("s3", "S3"),
    ("sts", "STS"),
    ("iam", "IAM"),
    ("ec2", "EC2"),
    ("dynamodb", "DYNAMODB"),
    ("dynamodb-streams", "DYNAMODB_STREAMS"),
    ("lambda", "LAMBDA"),
    ("sqs", "SQS"),
    ("sns", "SNS"),
    ("kms", "KMS"),
    ("ssm", "SSM"),
    ("logs", "CLOUDWATCH_LOGS"),
    ("monitoring", "CLOUDWATCH"),
    ("events", "EVENTBRIDGE"),
    ("states", "SFN"),
    ("cloudformation", "CLOUDFORMATION"),
    ("secretsmanager", "SECRETS_MANAGER"),
    ("ecr", "ECR"),
    ("ecs", "ECS"),
    ("eks", "EKS"),
    ("rds", "RDS"),
    ("route53", "ROUTE_53"),
    ("kinesis", "KINESIS"),
    ("firehose", "FIREHOSE"),
    ("acm", "ACM"),
    ("ses", "SES"),
    ("cloudfront", "CLOUDFRONT"),
    ("cloudtrail", "CLOUDTRAIL"),
    ("autoscaling", "AUTO_SCALING"),
    ("elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2"),
    ("apigateway", "API_GATEWAY"),
    ("cognito-idp", "COGNITO_IDENTITY_PROVIDER"),
    ("bedrock", "BEDROCK"),
    ("bedrock-runtime", "BEDROCK_RUNTIME"),
    ("bedrock-agent", "BEDROCK_AGENT"),
    ("sagemaker", "SAGEMAKER"),
    ("sagemaker-runtime", "SAGEMAKER_RUNTIME"),
    ("execute-api", "APIGATEWAYMANAGEMENTAPI"),
    ("iotdata", "IOT_DATA_PLANE"),
];

/// The `AWS_ENDPOINT_URL_<ID>` suffix of a route.
fn service_id(route: &str) -> String {
    SERVICE_IDS
        .iter()
        .find(|(r, _)| *r == route)
        .map(|(_, id)| id.to_string())
        .unwrap_or_else(|| route.to_ascii_uppercase().replace('-', "_"))
}

/// Where a request goes, told from its signing name and what it calls: most services have one
/// API under their signing name, but a few sign a second API, on another host, with the same
/// name (Bedrock's runtime, SageMaker's runtime, DynamoDB Streams), and some hosts cannot be
/// told from the request at all (IoT data's account endpoint, an API Gateway API's id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// The signing name, or the second API's route (`bedrock-runtime`…).
    pub(crate) key: String,
    /// The service as it signs (the real request is signed for it).
    pub(crate) service: String,
    /// The API's name when its host cannot be told from the request.
    unknown_host: Option<&'static str>,
}

impl Route {
    /// `target` is the request's X-Amz-Target.
    pub(crate) fn of(service: &str, path: &str, target: Option<&str>) -> Route {
        let starts = |prefixes: &[&str]| prefixes.iter().any(|p| path.starts_with(p));
        let (key, unknown_host) = match service {
            // InvokeModel, Converse…, async invocations and ApplyGuardrail (the control plane
            // lives under /foundation-models, /guardrails…).
            "bedrock" if starts(&["/model/", "/async-invoke", "/guardrail/"]) => {
                ("bedrock-runtime", None)
            }
            // Agents and knowledge bases: two APIs (build time, runtime) on two hosts with
            // overlapping paths.
            "bedrock"
                if starts(&[
                    "/agents",
                    "/knowledgebases",
                    "/flows",
                    "/prompts",
                    "/retrieveAndGenerate",
                    "/rerank",
                    "/sessions",
                ]) =>
            {
                ("bedrock-agent", Some("Bedrock Agents"))
            }
            "sagemaker" if starts(&["/endpoints/", "/inference-components/"]) => {
                ("sagemaker-runtime", None)
            }
            "dynamodb" if target.is_some_and(|t| t.starts_with("DynamoDBStreams_")) => {
                ("dynamodb-streams", None)
            }
            "iotdata" | "iotdevicegateway" => ("iotdata", Some("IoT Data Plane")),
            "execute-api" => ("execute-api", Some("API Gateway's execute-api")),
            _ => (service, None),
        };
        Route {
            key: key.to_string(),
            service: service.to_string(),
            unknown_host,
        }
    }
}

/// Where `--proxy` sends each request: the endpoints the profile configures, resolved once
/// before the command starts (the command itself only knows the proxy), else the standard
/// endpoint of the request's service and region.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProxyTargets {
    /// By route: AWS_ENDPOINT_URL_<ID> or `[services]` `<id>`.
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
        let known = SERVICE_IDS
            .iter()
            .map(|(route, id)| (route.to_string(), id.to_ascii_lowercase()));
        let from_env = env
            .names_starting_with("AWS_ENDPOINT_URL_")
            .map(|n| n["AWS_ENDPOINT_URL_".len()..].to_ascii_lowercase())
            .filter(|id| !SERVICE_IDS.iter().any(|(_, k)| k.eq_ignore_ascii_case(id)))
            .map(|id| (id.clone(), id));
        let mut configured = std::collections::HashMap::new();
        for (route, id) in known.chain(from_env) {
            if let Some(url) = service_endpoint(files, profile, env, &id)? {
                if Some(&url) != all.as_ref() {
                    configured.insert(route, url);
                }
            }
        }
        Ok(ProxyTargets { configured, all })
    }

    /// The endpoint (scheme, host, optional port and base path) a request on `route` in
    /// `region` goes to, or why the proxy cannot tell (a line for the command's error).
    pub(crate) fn url(&self, route: &Route, region: &str) -> Result<String, String> {
        if let Some(url) = self.configured.get(&route.key).or(self.all.as_ref()) {
            return Ok(url.trim_end_matches('/').to_string());
        }
        match route.unknown_host {
            Some(api) => Err(format!(
                "{api} requests (signed for {}) go to a host the proxy cannot tell from the request; set AWS_ENDPOINT_URL_{} for mfa-exec to that host, or run the command without --proxy",
                route.service,
                service_id(&route.key)
            )),
            None => Ok(standard_endpoint(&route.key, region)),
        }
    }
}

/// A service's public endpoint in a region, by its partition's DNS suffix (aws-cn regions
/// start with `cn-`); IAM and the other global services have one endpoint a partition, and a
/// few services' hosts are not named as they sign (SES signs as `ses` on `email.`). `route` is
/// a signing name or one of [`Route`]'s second APIs.
pub(crate) fn standard_endpoint(route: &str, region: &str) -> String {
    let china = region.starts_with("cn-");
    let gov = region.starts_with("us-gov-");
    let suffix = if china {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    match route {
        "iam" if china => format!("https://iam.{region}.{suffix}"),
        "iam" | "route53" if gov => format!("https://{route}.us-gov.amazonaws.com"),
        "route53" if china => "https://route53.amazonaws.com.cn".to_string(),
        "iam" | "route53" | "cloudfront" if !china => format!("https://{route}.{suffix}"),
        "ses" => format!("https://email.{region}.{suffix}"),
        "mobiletargeting" => format!("https://pinpoint.{region}.{suffix}"),
        "sagemaker" => format!("https://api.sagemaker.{region}.{suffix}"),
        "sagemaker-runtime" => format!("https://runtime.sagemaker.{region}.{suffix}"),
        "dynamodb-streams" => format!("https://streams.dynamodb.{region}.{suffix}"),
        _ => format!("https://{route}.{region}.{suffix}"),
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
                "route53",
                "us-gov-west-1",
                "https://route53.us-gov.amazonaws.com",
            ),
            ("route53", "us-east-1", "https://route53.amazonaws.com"),
            (
                "bedrock-runtime",
                "us-west-2",
                "https://bedrock-runtime.us-west-2.amazonaws.com",
            ),
            (
                "sagemaker-runtime",
                "eu-west-1",
                "https://runtime.sagemaker.eu-west-1.amazonaws.com",
            ),
            (
                "dynamodb-streams",
                "us-east-1",
                "https://streams.dynamodb.us-east-1.amazonaws.com",
            ),
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

    #[test]
    fn proxied_services_find_their_endpoints_by_the_sdks_service_id() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[default]\nservices = local\n\n[services local]\ncloudwatch_logs =\n  endpoint_url = http://127.0.0.1:4001\nroute_53 =\n  endpoint_url = http://127.0.0.1:4002\n",
        )
        .unwrap();
        let files = ProfileFiles::load(config, dir.path().join("credentials")).unwrap();
        let env = Env::from_pairs(&[
            ("AWS_ENDPOINT_URL_SFN", "http://127.0.0.1:4003"),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:4004"),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:4005"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4006"),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:4007"),
        ]);
        let targets = ProxyTargets::of(&files, files.profile("default"), &env).unwrap();
        let url =
            |service: &str, path: &str| targets.url(&Route::of(service, path, None), "us-east-1");
        for (signing_name, port) in [
            ("logs", 4001),
            ("route53", 4002),
            ("states", 4003),
            ("events", 4004),
            ("monitoring", 4005),
            ("secretsmanager", 4006),
        ] {
            assert_eq!(
                url(signing_name, "/"),
                Ok(format!("http://127.0.0.1:{port}")),
                "{signing_name}"
            );
        }
        // Bedrock's runtime signs as bedrock; its control plane keeps the standard host.
        assert_eq!(
            url("bedrock", "/model/m/converse"),
            Ok("http://127.0.0.1:4007".to_string())
        );
        assert_eq!(
            url("bedrock", "/foundation-models"),
            Ok("https://bedrock.us-east-1.amazonaws.com".to_string())
        );
        assert_eq!(
            url("sqs", "/"),
            Ok("https://sqs.us-east-1.amazonaws.com".to_string())
        );
        let none = ProxyTargets::default();
        let to = |service: &str, path: &str, target: Option<&str>| {
            none.url(&Route::of(service, path, target), "eu-west-1")
        };
        assert_eq!(
            to("sagemaker", "/endpoints/e/invocations", None),
            Ok("https://runtime.sagemaker.eu-west-1.amazonaws.com".to_string())
        );
        assert_eq!(
            to("dynamodb", "/", Some("DynamoDBStreams_20120810.GetRecords")),
            Ok("https://streams.dynamodb.eu-west-1.amazonaws.com".to_string())
        );
        // Hosts a request cannot tell: a clear refusal naming the variable that would.
        let why = to("execute-api", "/prod/@connections/x", None).unwrap_err();
        assert!(
            why.contains("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"),
            "{why}"
        );
        let why = to("iotdata", "/things/t/shadow", None).unwrap_err();
        assert!(
            why.contains("IoT Data Plane") && why.contains("AWS_ENDPOINT_URL_IOT_DATA_PLANE"),
            "{why}"
        );
    }
}
