"""The optional WAF web ACL in front of the API stage (context `waf`, off by default).

Rules, cheapest verdict first:

1. a per-IP rate limit (`wafRateLimit` requests in any 5 minutes), answered with the API's own 429
   problem document, so a flood is cut before the authorizer's Lambda and DynamoDB read;
2. AWS's IP reputation list;
3. AWS's common rule set, with its 8 KB body-size rule only counted: the API accepts bodies up to
   64 KB (a cart of 50 lines) and refuses bigger ones itself with 413;
4. AWS's known-bad-inputs rule set (Log4j and similar exploit patterns).

Every rule publishes CloudWatch metrics (charted on the dashboard) and keeps sampled requests.
Full WAF logs are not configured: they would record every caller's x-api-key header.
"""

from __future__ import annotations

import json

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from loyalty.api.gateway_responses import THROTTLED

RATE_WINDOW_SECONDS = 300
THROTTLED_BODY_KEY = "throttled"
# (rule name, AWS managed rule group, rules inside it to count instead of block)
MANAGED_RULE_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("IpReputation", "AWSManagedRulesAmazonIpReputationList", ()),
    ("CommonRules", "AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY",)),
    ("KnownBadInputs", "AWSManagedRulesKnownBadInputsRuleSet", ()),
)
RATE_RULE = "RateLimitPerIp"


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


class ApiFirewall(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, name: str, stage: apigw.Stage, rate_limit: int
    ) -> None:
        super().__init__(scope, construct_id)
        # Named (not generated) so that its CloudWatch metrics, keyed by name, can be charted; the
        # name is given because the stack it sits in may be a nested one, whose name is generated.
        self.name = name
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=RATE_RULE,
                priority=0,
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=rate_limit,
                        aggregate_key_type="IP",
                        evaluation_window_sec=RATE_WINDOW_SECONDS,
                    )
                ),
                action=wafv2.CfnWebACL.RuleActionProperty(
                    block=wafv2.CfnWebACL.BlockActionProperty(
                        custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                            response_code=THROTTLED.status, custom_response_body_key=THROTTLED_BODY_KEY
                        )
                    )
                ),
                visibility_config=_visibility(RATE_RULE),
            )
        ]
        for priority, (rule_name, group, counted) in enumerate(MANAGED_RULE_GROUPS, start=1):
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name=rule_name,
                    priority=priority,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name=group,
                            rule_action_overrides=[
                                wafv2.CfnWebACL.RuleActionOverrideProperty(
                                    name=name,
                                    action_to_use=wafv2.CfnWebACL.RuleActionProperty(
                                        count=wafv2.CfnWebACL.CountActionProperty()
                                    ),
                                )
                                for name in counted
                            ]
                            or None,
                        )
                    ),
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    visibility_config=_visibility(rule_name),
                )
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=self.name,
            description="Loyalty API: per-IP rate limit and AWS managed rule groups",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow=wafv2.CfnWebACL.AllowActionProperty()),
            rules=rules,
            custom_response_bodies={
                THROTTLED_BODY_KEY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=json.dumps(THROTTLED.body())
                )
            },
            visibility_config=_visibility(self.name),
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
        self.rule_names: tuple[str, ...] = (RATE_RULE, *(name for name, _, _ in MANAGED_RULE_GROUPS))
