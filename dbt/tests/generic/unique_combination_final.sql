{#- Identity columns are unique; with final=true the model (a ReplacingMergeTree) is read with FINAL,
    which is how every reader sees it. -#}
{% test unique_combination_final(model, columns, final=false) %}
select {{ columns | join(', ') }}, count() as n
from {{ model }} {% if final %}final{% endif %}
group by {{ columns | join(', ') }}
having n > 1
{% endtest %}
