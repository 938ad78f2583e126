-- IBM Telco Customer Churn (one row per customer, churned in the last month or not) in the churn model's
-- names: tenure, monthly charge (ARPU), contract type and the services held; every text column stays an
-- open category in the customer's own words.
SELECT CAST(customerID AS VARCHAR) AS subscriber_id,
       CAST(tenure AS DOUBLE) AS tenure_months,
       CAST(MonthlyCharges AS DOUBLE) AS arpu_monthly,
       TRY_CAST(NULLIF(trim(CAST(TotalCharges AS VARCHAR)), '') AS DOUBLE) AS total_charges,
       TRY_CAST(NULLIF(trim(CAST(TotalCharges AS VARCHAR)), '') AS DOUBLE) / NULLIF(CAST(tenure AS DOUBLE), 0)
         - CAST(MonthlyCharges AS DOUBLE) AS charge_change,
       CAST(Contract AS VARCHAR) AS contract_type,
       CAST(InternetService AS VARCHAR) AS internet_service,
       CAST(PaymentMethod AS VARCHAR) AS payment_method,
       CAST(PaperlessBilling AS VARCHAR) AS paperless_billing,
       CAST(OnlineSecurity AS VARCHAR) AS online_security,
       CAST(TechSupport AS VARCHAR) AS tech_support,
       CAST(OnlineBackup AS VARCHAR) AS online_backup,
       CAST(DeviceProtection AS VARCHAR) AS device_protection,
       CAST(StreamingTV AS VARCHAR) AS streaming_tv,
       CAST(StreamingMovies AS VARCHAR) AS streaming_movies,
       CAST(MultipleLines AS VARCHAR) AS multiple_lines,
       CAST(PhoneService AS VARCHAR) AS phone_service,
       CAST(Partner AS VARCHAR) AS partner,
       CAST(Dependents AS VARCHAR) AS dependents,
       CAST(SeniorCitizen AS VARCHAR) AS senior_citizen,
       CAST(gender AS VARCHAR) AS gender,
       lower(CAST(Churn AS VARCHAR)) IN ('yes', 'true', '1') AS churned  -- DuckDB may read Yes/No as a boolean
FROM telco
ORDER BY subscriber_id
