package io.tether.scenario;

/** What a support agent does with a refund request; a correct answer starts with one of these words. */
public enum Decision {
    REFUND, REPLACE, DENY, ESCALATE
}
